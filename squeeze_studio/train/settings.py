"""Training defaults for real backbones (``squeeze train stage``), plain Python: the CLI imports this without
torch. Why these values: docs/training.md. The demo recipe keeps its own (``train.demo.DemoRecipe``)."""

# The attention projections of every QwenImage transformer block (image and text streams): peft target_modules.
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
LORA_RANK = 16
BATCH_SIZE = 1  # per process and micro-batch: one 1024 x 1024 example with its references
GRAD_ACCUM = 4  # micro-batches per optimiser step
LEARNING_RATE = 1e-4
WARMUP_STEPS = 100
STEPS = 2000
CHECKPOINT_EVERY = 250
ENCODE_BATCH = 4  # records per MLLM/VAE pass while encoding
