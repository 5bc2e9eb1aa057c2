"""The GPU training path, run on the CPU: encodings streamed from disk (bf16 shards, written once, resumable,
read per batch), references at their own aspect ratio, LoRA, gradient checkpointing, bf16 mixed precision
under accelerate, checkpoints of the trained weights only; memory that does not grow with the dataset."""
import json
import weakref

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from squeeze_studio.cli import main
from squeeze_studio.synth.dataset import load_jsonl, make_dataset
from squeeze_studio.testing.tiny import build_tiny_pipeline
from squeeze_studio.train import encodings_store
from squeeze_studio.train.encode import EncodedExample, cast_states, encode_records
from squeeze_studio.train.encodings_store import EncodingStore, store_complete, store_settings, write_store
from squeeze_studio.train.trainer import StageConfig, full_copy, train_stage


def dataset(folder, count: int, wide_every: int = 2):
    """SynthSubjects records; every ``wide_every``-th one gets a reference cropped wide (64 x 40)."""
    make_dataset(folder, count, seed=0, split="train", max_refs=2)
    lines = []
    for i, line in enumerate((folder / "data.jsonl").read_text().splitlines()):
        record = json.loads(line)
        if i % wide_every == 0:
            with Image.open(folder / record["input_images"][0]) as image:
                image.convert("RGB").crop((0, 12, 64, 52)).save(folder / f"wide{i}.png")
            record["input_images"][0] = f"wide{i}.png"
        lines.append(json.dumps(record))
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return load_jsonl(dataset(tmp_path_factory.mktemp("synth"), 6))


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline()


@pytest.fixture
def live_examples(monkeypatch):
    """The most ``EncodedExample`` objects alive at once: what the run held in memory, counted, not timed."""
    count = {"live": 0, "peak": 0}
    original = EncodedExample.__init__

    def gone():
        count["live"] -= 1

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        count["live"] += 1
        count["peak"] = max(count["peak"], count["live"])
        weakref.finalize(self, gone)

    monkeypatch.setattr(EncodedExample, "__init__", init)
    return count


def test_references_are_encoded_at_their_own_aspect_ratio_as_inference_does(pipe, records):
    examples = encode_records(pipe, records[:2], 64)
    wide = records[0]["input_images"][0]
    with Image.open(wide) as image:
        inference = pipe.backbone.encode_references([image.convert("RGB")], pipe.config.reference_image_area)
    first = examples[0]
    assert first.grids[0] == inference.grids[0] and first.grids[0][1] != first.grids[0][2]  # not square
    rows, cols = first.grids[0][1:]
    torch.testing.assert_close(first.references[: rows * cols], inference.tokens[0].float())
    assert examples[1].grids[0][1] == examples[1].grids[0][2]  # a square reference stays square


def test_the_encode_pass_runs_the_vae_one_image_at_a_time(pipe, records, monkeypatch):
    """Four records of two references at 1024 x 1024 in one VAE call would hold about 4 x 3 GiB of activations
    beside the 15 GiB MLLM on a 24 GB card; one image per call holds one (docs/training.md)."""
    batches = []
    encode = type(pipe.backbone).vae_encode

    def counting(adapter, pixels):
        batches.append(pixels.shape[0])
        return encode(adapter, pixels)

    monkeypatch.setattr(type(pipe.backbone), "vae_encode", counting)
    chunk = records[:4]
    encode_records(pipe, chunk, 64, batch=4)
    images = sum(1 + len(r["input_images"]) for r in chunk)
    assert batches == [1] * images


def test_float16_states_refuse_what_they_cannot_hold_and_bfloat16_keeps_it():
    large = torch.tensor([1.0, 9.0e4])
    with pytest.raises(ValueError, match="bfloat16"):
        cast_states(large, torch.float16)
    assert torch.isfinite(cast_states(large, torch.bfloat16)).all()


def test_the_store_holds_what_encoding_in_memory_gives_in_bfloat16(pipe, records, tmp_path):
    settings = store_settings(pipe, records, 64, shard_size=4)
    write_store(pipe, records, tmp_path, settings, batch=3)
    assert store_complete(tmp_path, settings)
    store = EncodingStore(tmp_path)
    in_memory = encode_records(pipe, records, 64, states_dtype=torch.bfloat16)
    assert len(store) == len(records) and store.bucket_keys() == [tuple(map(tuple, e.grids)) for e in in_memory]
    assert len(set(store.bucket_keys())) > 1  # wide and square references: different buckets
    for stored, expected in zip(store.load([5, 0, 5]), [in_memory[5], in_memory[0], in_memory[5]], strict=True):
        assert stored.positive.dtype == torch.bfloat16 and stored.target.dtype == torch.float32
        for name in ("target", "references", "subject", "positive", "positive_image", "negative", "negative_image"):
            torch.testing.assert_close(getattr(stored, name), getattr(expected, name), atol=1e-5, rtol=1e-5)
        assert stored.grids == [tuple(g) for g in expected.grids]
    with safe_open(str(tmp_path / "shard-00001.safetensors"), "pt") as f:
        assert {key.split(".")[0] for key in f.keys()} == {"4", "5"}  # 4 per shard: the last one holds 2


def test_writing_resumes_after_the_last_finished_shard_and_splits_across_processes(pipe, records, tmp_path):
    settings = store_settings(pipe, records, 64, shard_size=2)
    calls = []

    def interrupt_in_the_second_shard(count):
        calls.append(count)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_store(pipe, records, tmp_path, settings, batch=2, progress=interrupt_in_the_second_shard)
    assert [p.name for p in sorted(tmp_path.glob("shard-*"))] == ["shard-00000.json", "shard-00000.safetensors"]
    runs = pipe.encoder.runs
    write_store(pipe, records, tmp_path, settings, batch=2, process_index=1, num_processes=2)  # shard 1 of 0-2
    assert pipe.encoder.runs == runs + 1 and not store_complete(tmp_path, settings)
    write_store(pipe, records, tmp_path, settings, batch=2, process_index=0, num_processes=2)  # 0 is done: 2 only
    assert pipe.encoder.runs == runs + 2 and store_complete(tmp_path, settings)
    other = store_settings(pipe, records[:4], 64, shard_size=2)
    with pytest.raises(ValueError, match="made with other data or settings .count: 6 vs 4"):
        store_complete(tmp_path, other)


def test_batches_share_one_reference_shape_and_the_store_is_read_per_batch(pipe, records, tmp_path, monkeypatch):
    settings = store_settings(pipe, records, 64, shard_size=4)
    store = EncodingStore(write_store(pipe, records, tmp_path / "store", settings))
    reads = []
    original = store.load
    monkeypatch.setattr(store, "load", lambda indices: reads.append(indices) or original(indices))
    keys = store.bucket_keys()
    config = StageConfig("identity", steps=3, batch_size=3, use_references=True, lora_rank=4, keep_lora=True,
                         gradient_accumulation=2, warmup_steps=1, log_every=1)
    train_stage(build_tiny_pipeline(), store, config, tmp_path / "stage", 64)
    assert len(reads) == 6  # 3 steps x 2 micro-batches
    assert all(len(batch) == 3 and len({keys[i] for i in batch}) == 1 for batch in reads)


def test_a_lora_checkpoint_holds_only_the_trained_weights_and_another_configuration_is_refused(pipe, records,
                                                                                              tmp_path):
    examples = encode_records(pipe, records, 64)
    config = StageConfig("align", steps=4, batch_size=2, lora_rank=4, keep_lora=True, checkpoint_every=2,
                         warmup_steps=1, log_every=1, learning_rate=1e-2)
    trained = build_tiny_pipeline()
    train_stage(trained, examples, config, tmp_path, 64)
    with safe_open(str(tmp_path / "state" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and all("lora_" in key for key in keys)  # not the frozen transformer
    rerun, steps = build_tiny_pipeline(), []
    train_stage(rerun, examples, config, tmp_path, 64, on_log=lambda r: steps.append(r["step"]))
    assert steps == []  # finished: its trained weights load and nothing trains
    for name, weight in trained.transformer.state_dict().items():
        assert torch.equal(rerun.transformer.state_dict()[name], weight), name
    for targets, what in ((("to_q", "img_mlp.net.0.proj"), "lacks transformer_blocks.0.img_mlp"),
                          (("to_q",), "holds transformer_blocks.0.attn.add_k_proj")):
        other = StageConfig("align", steps=4, batch_size=2, lora_rank=4, keep_lora=True, lora_targets=targets)
        with pytest.raises(ValueError, match=f"made by another configuration .it {what}"):
            train_stage(build_tiny_pipeline(), examples, other, tmp_path, 64)


def test_bf16_training_keeps_trained_weights_in_float32_then_restores_their_dtype(pipe, records, tmp_path):
    from accelerate import Accelerator

    examples = encode_records(pipe, records, 64)
    bf16 = build_tiny_pipeline()
    for module in (bf16.transformer, bf16.connector):
        torch.nn.Module.to(module, torch.bfloat16)  # as `from_pretrained(..., dtype=torch.bfloat16)` loads them
    seen = {}

    def spy(connector, inputs):
        seen["connector"] = next(connector.parameters()).dtype
        seen["frozen"] = bf16.transformer.proj_out.weight.dtype
        seen["lora"] = bf16.transformer.transformer_blocks[0].attn.to_q.lora_A["default"].weight.dtype

    bf16.connector.register_forward_pre_hook(spy)
    config = StageConfig("identity", steps=2, batch_size=2, lora_rank=4, keep_lora=True, use_references=True,
                         mixed_precision="bf16", gradient_checkpointing=True, warmup_steps=1, log_every=1)
    train_stage(bf16, examples, config, tmp_path, 64)
    assert seen == {"connector": torch.float32, "frozen": torch.bfloat16, "lora": torch.float32}
    assert next(bf16.connector.parameters()).dtype == torch.bfloat16
    assert bf16.transformer.transformer_blocks[0].attn.to_q.lora_A["default"].weight.dtype == torch.bfloat16
    assert not bf16.transformer.gradient_checkpointing
    assert Accelerator(cpu=True).mixed_precision == "no"  # the next stage (the demo's VAE, say) inherits nothing


def test_a_full_copy_rebuilds_a_lora_transformer_from_its_state_dict():
    from peft import LoraConfig

    transformer = build_tiny_pipeline().transformer
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=["to_q"]))
    copy = full_copy(transformer, transformer.state_dict())
    assert copy is not transformer and copy.peft_config.keys() == transformer.peft_config.keys()
    for name, weight in transformer.state_dict().items():
        assert torch.equal(copy.state_dict()[name], weight), name


def test_the_sharded_path_trains_what_the_plain_path_trains(pipe, records, tmp_path, monkeypatch):
    """Under FSDP the transformer and connector are prepared as one module whose forward runs the loss, and the
    trained weights come back as full copies gathered from the processes; forced on here, on one CPU process
    without FSDP, the same steps give the same weights."""
    from squeeze_studio.train import trainer

    examples = encode_records(pipe, records, 64)
    config = StageConfig("identity", steps=3, batch_size=2, lora_rank=4, keep_lora=True, use_references=True,
                         gradient_checkpointing=True, warmup_steps=1, log_every=1, learning_rate=1e-2)
    plain = build_tiny_pipeline()
    train_stage(plain, examples, config, tmp_path / "plain", 64)
    monkeypatch.setattr(trainer, "_sharded", lambda accelerator: True)
    sharded = build_tiny_pipeline()
    original = sharded.transformer
    train_stage(sharded, examples, config, tmp_path / "sharded", 64)
    assert sharded.transformer is not original and sharded.backbone.transformer is sharded.transformer
    assert sharded.transformer.peft_config  # still an adapter, for the add-on
    for ours, theirs in ((sharded.transformer, plain.transformer), (sharded.connector, plain.connector)):
        for name, weight in theirs.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[name], weight, rtol=0, atol=0, msg=name)


def stage_command(model, data, out, *extra):
    return main(["train", "stage", "--model", str(model), "--data", str(data), "--stage", "identity", "--steps", "2",
                 "--out", str(out), "--size", "64", *extra])


def test_the_stage_command_trains_with_lora_checkpointing_bf16_and_streamed_encodings(tiny_stock_dir, tmp_path,
                                                                                       monkeypatch):
    from diffusers import QwenImageTransformer2DModel
    from torch.utils.checkpoint import checkpoint

    checkpointed = []

    def counting(function, *args, **kwargs):
        checkpointed.append(function)
        return checkpoint(function, *args, use_reentrant=False, **kwargs)

    enable = QwenImageTransformer2DModel.enable_gradient_checkpointing
    monkeypatch.setattr(QwenImageTransformer2DModel, "enable_gradient_checkpointing",
                        lambda self, gradient_checkpointing_func=None: enable(self, counting))
    data = dataset(tmp_path / "data", 6)
    assert stage_command(tiny_stock_dir, data, tmp_path / "addon", "--mixed-precision", "bf16", "--lr", "1e-2") == 0
    assert checkpointed  # the transformer's blocks ran under gradient checkpointing (the default)
    work = tmp_path / "addon.work"
    store = EncodingStore(work / "encodings")
    assert len(store) == 6 and store.null_states.dtype == torch.bfloat16
    progress = json.loads((work / "stage" / "progress.json").read_text())
    assert progress["done"] and progress["step"] == 2
    training = json.loads((tmp_path / "addon" / "squeeze_addon.json").read_text())["training"]
    assert training["mixed_precision"] == "bf16" and training["grad_accum"] == 4 and training["lora_rank"] == 16
    with safe_open(str(tmp_path / "addon" / "pytorch_lora_weights.safetensors"), "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.bfloat16  # the base's dtype, as loaded
    encoded = []
    monkeypatch.setattr(encodings_store, "encode_chunk", lambda *a, **k: encoded.append(1))
    assert stage_command(tiny_stock_dir, data, tmp_path / "addon", "--mixed-precision", "bf16") == 0
    assert encoded == []  # a rerun finds the encodings (and the finished stage) and computes nothing again


def test_quantized_base_needs_bitsandbytes_in_one_line(tiny_stock_dir, tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here")
    assert stage_command(tiny_stock_dir, tmp_path, tmp_path / "a", "--quantize-base", "4bit") == 2
    assert capsys.readouterr().err.strip() == "error: --quantize-base 4bit needs bitsandbytes: pip install bitsandbytes"


@pytest.mark.slow  # about 25 s: three datasets encoded and trained on
def test_memory_stays_flat_as_the_dataset_grows(tiny_stock_dir, tmp_path, live_examples):
    """4 vs 64 examples through encoding and training: the most examples held at once is the encoding batch
    either way (the store is written a shard at a time and read a batch at a time). Counted, not measured:
    at tiny scale a process's RSS could not tell 4 from 64 examples anyway."""
    peaks = {}
    for count in (4, 64):
        live_examples["peak"] = 0
        data = dataset(tmp_path / f"data{count}", count)
        assert stage_command(tiny_stock_dir, data, tmp_path / f"addon{count}", "--batch-size", "2",
                             "--grad-accum", "2", "--encode-batch", "4") == 0
        peaks[count] = live_examples["peak"]
        shards = sorted((tmp_path / f"addon{count}.work" / "encodings").glob("shard-*.json"))
        assert max(len(json.loads(s.read_text())["grids"]) for s in shards) <= 8  # one shard's worth written at once
    assert peaks[4] == peaks[64] <= 4
    live_examples["peak"] = 0
    held = encode_records(build_tiny_pipeline(), load_jsonl(tmp_path / "data64"), 64)  # in memory, for contrast
    assert live_examples["peak"] == len(held) == 64
