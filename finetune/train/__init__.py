"""`finetune train`: three-stage (Q)LoRA training of one adapter, with EWC between stages and SSR rehearsal.

Stage 1 is causal LM on the Elixir/Erlang corpus, stage 2 SFT on task records, stage 3 the book curriculum;
each continues the same adapter. The run is described by a validated `config.RunConfig` (see
finetune/configs/ for examples).
"""
