"""Webhook delivery: the dispatcher process and the signed, bounded HTTP delivery."""
