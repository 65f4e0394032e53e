"""Connector that moves approved Procore spend into Deltek Vantagepoint."""
