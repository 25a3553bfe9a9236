"""Numbers about language models — parameters, FLOPs, memory, time — each checked against a real count."""
