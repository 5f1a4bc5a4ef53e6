"""What every source shares: the shared raw tables (schema.py), the sinks that publish them
(sinks/), the PII redactor (redact.py), remote-file fetch (fetch.py), file sniffing (sniff.py),
the shrink guard (guard.py) and the load-audit totals (audit.py). Sources import these and never
each other."""
