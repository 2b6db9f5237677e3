"""`finetune build`: raw collections → cleaned, deduplicated, decontaminated datasets for three stages.

One module per step: clean, licences, secrets, dedupe, decontaminate (filters, each giving a reason for
every drop), tasks and curriculum (samples in `lsp.prompt`'s format), tokenizer_report, and build (the
orchestrator with its process pool, cache and dataset card).
"""
