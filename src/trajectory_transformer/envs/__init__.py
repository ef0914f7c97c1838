"""Environments: made from data (registered ids only), the one episode loop, baseline agents."""
