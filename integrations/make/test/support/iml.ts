/**
 * A small evaluator for the part of Make's IML these files use, so their requests can be
 * replayed against a live Voxhook: `{{…}}` templates over paths (parameters.x, body.a.b,
 * temp.created.id), string/number/boolean/null/undefined literals, the operators
 * == != < > <= >= && || ! and parentheses, and the functions ifempty, join, length and
 * toCollection. Anything else is refused loudly, so a file cannot drift into IML these tests
 * do not understand. It is not Make's IML runtime (which is not published).
 */

export type Context = Record<string, unknown>;

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(==|!=|<=|>=|&&|\|\||[<>!(),])|([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*|\[\d+\])*))/y;

type Token = { kind: 'number' | 'string' | 'op' | 'name'; text: string };

const tokenize = (source: string): Token[] => {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < source.length) {
    if (/^\s*$/.test(source.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(source);
    if (!match) throw new Error(`IML: cannot read "${source.slice(at)}" in {{${source}}}`);
    if (match[1] !== undefined) tokens.push({ kind: 'number', text: match[1] });
    else if (match[2] !== undefined) tokens.push({ kind: 'string', text: match[2] });
    else if (match[3] !== undefined) tokens.push({ kind: 'op', text: match[3] });
    else tokens.push({ kind: 'name', text: match[4] ?? '' });
  }
  return tokens;
};

const lookup = (context: Context, path: string): unknown => {
  let value: unknown = context;
  for (const part of path.replace(/\[(\d+)\]/g, '.$1').split('.')) {
    if (value === null || value === undefined || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
};

const isEmpty = (value: unknown): boolean => value === undefined || value === null || value === ''
  || (Array.isArray(value) && value.length === 0);

const FUNCTIONS: Record<string, (...args: unknown[]) => unknown> = {
  ifempty: (value, fallback) => (isEmpty(value) ? fallback : value),
  join: (list, separator) => (Array.isArray(list) ? list.join(String(separator)) : undefined),
  length: (value) => (Array.isArray(value) || typeof value === 'string' ? value.length : 0),
  toCollection: (list, keyName, valueName) => (Array.isArray(list)
    ? Object.fromEntries(list.map((item) => [(item as Record<string, unknown>)[String(keyName)],
      (item as Record<string, unknown>)[String(valueName)]]))
    : undefined),
};

/** Evaluate one IML expression (the inside of {{…}}). */
export const evaluateExpression = (source: string, context: Context): unknown => {
  const tokens = tokenize(source);
  let position = 0;
  const peek = (): Token | undefined => tokens[position];
  const take = (text?: string): Token => {
    const token = tokens[position];
    if (!token || (text !== undefined && token.text !== text)) {
      throw new Error(`IML: expected ${text ?? 'more'} in {{${source}}}`);
    }
    position += 1;
    return token;
  };
  const primary = (): unknown => {
    const token = take();
    if (token.kind === 'number') return Number(token.text);
    if (token.kind === 'string') return token.text.slice(1, -1).replace(/\\(.)/g, '$1');
    if (token.text === '(') { const value = or(); take(')'); return value; }
    if (token.text === '!') return !primary();
    if (token.kind === 'name') {
      if (token.text === 'true') return true;
      if (token.text === 'false') return false;
      if (token.text === 'null') return null;
      if (token.text === 'undefined') return undefined;
      if (peek()?.text === '(') {
        const fn = FUNCTIONS[token.text];
        if (!fn) throw new Error(`IML: function ${token.text}() is not one these tests know`);
        take('(');
        const args: unknown[] = [];
        while (peek()?.text !== ')') { args.push(or()); if (peek()?.text === ',') take(','); }
        take(')');
        return fn(...args);
      }
      return lookup(context, token.text);
    }
    throw new Error(`IML: unexpected "${token.text}" in {{${source}}}`);
  };
  const comparison = (): unknown => {
    const left = primary();
    const op = peek()?.text;
    if (op && ['==', '!=', '<', '>', '<=', '>='].includes(op)) {
      take();
      const right = primary();
      switch (op) {
        case '==': return left === right;
        case '!=': return left !== right;
        case '<': return Number(left) < Number(right);
        case '>': return Number(left) > Number(right);
        case '<=': return Number(left) <= Number(right);
        default: return Number(left) >= Number(right);
      }
    }
    return left;
  };
  const and = (): unknown => {
    let value = comparison();
    while (peek()?.text === '&&') { take(); const right = comparison(); value = Boolean(value) && Boolean(right); }
    return value;
  };
  const or = (): unknown => {
    let value = and();
    while (peek()?.text === '||') { take(); const right = and(); value = Boolean(value) || Boolean(right); }
    return value;
  };
  const value = or();
  if (position !== tokens.length) throw new Error(`IML: unexpected "${tokens[position]?.text}" in {{${source}}}`);
  return value;
};

const WHOLE = /^\{\{(.*)\}\}$/s;
const PART = /\{\{(.*?)\}\}/gs;

/**
 * Evaluate a template: a string that is one {{…}} gives the value itself (an object, a
 * list, undefined); other strings interpolate; objects and lists are evaluated throughout,
 * keys whose value is undefined are dropped (as Make leaves them out of a request).
 */
export const evaluate = (template: unknown, context: Context): unknown => {
  if (typeof template === 'string') {
    const whole = WHOLE.exec(template);
    if (whole && !whole[1]?.includes('}}')) return evaluateExpression(whole[1] ?? '', context);
    return template.replace(PART, (_, expression: string) => {
      const value = evaluateExpression(expression, context);
      return value === undefined || value === null ? '' : String(value);
    });
  }
  if (Array.isArray(template)) return template.map((item) => evaluate(item, context));
  if (template && typeof template === 'object') {
    const result: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(template)) {
      const evaluated = evaluate(value, context);
      if (evaluated !== undefined) result[key] = evaluated;
    }
    return result;
  }
  return template;
};

/** The truth of a directive such as condition or valid (absent: true). */
export const holds = (template: unknown, context: Context): boolean =>
  template === undefined ? true : Boolean(evaluate(template, context));
