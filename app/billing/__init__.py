"""Billing: accounts, API keys, the wallet and its audit, pricing, usage figures."""
