"""Chat: answering questions (retrieval, prompting, model backends, streaming), conversations, quota, usage and
teacher logs."""
