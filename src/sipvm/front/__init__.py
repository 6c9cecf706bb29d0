"""The SIP front that spreads calls over media workers (Kamailio dispatcher)."""
