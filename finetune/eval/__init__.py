"""`finetune eval`: problems, sandboxed execution, pass@k, metrics and reports."""
