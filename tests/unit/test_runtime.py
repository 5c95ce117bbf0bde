"""Device choice for the ONNX runtime: ``auto`` measures only when it has a choice and keeps
the faster device. onnxruntime's provider list and the per-device timing are replaced by
test doubles with the same shape (a list of provider names; device -> median seconds)."""

import logging

import pytest

from jam.errors import JamError
from jam.model import runtime
from jam.model.runtime import choose_device, default_model_path, load_model, pick_device

CPU_ONLY = ["AzureExecutionProvider", "CPUExecutionProvider"]  # what a CPU-only onnxruntime lists
WITH_CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]


class FakeTiming:
    """Stands in for the per-device measurement: fixed medians, and a record of each call."""

    def __init__(self, **seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[list[str]] = []

    def __call__(self, devices: list[str]) -> dict[str, float]:
        self.calls.append(list(devices))
        return {d: self.seconds[d] for d in devices if d in self.seconds}


def test_choose_device_keeps_the_faster_and_cpu_on_a_near_tie():
    assert choose_device({"cpu": 85e-6, "cuda": 300e-6}) == "cpu"
    assert choose_device({"cpu": 300e-6, "cuda": 85e-6}) == "cuda"
    assert choose_device({"cpu": 100e-6, "cuda": 95e-6}) == "cpu"  # within 10 %: noise
    assert choose_device({"cpu": 100e-6, "cuda": 100e-6}) == "cpu"
    assert choose_device({"cpu": 100e-6}) == "cpu"
    assert choose_device({"cuda": 100e-6}) == "cuda"
    with pytest.raises(ValueError):
        choose_device({})


def test_auto_with_only_the_cpu_times_nothing():
    timing = FakeTiming(cpu=85e-6)
    assert pick_device("auto", CPU_ONLY, timing) == "cpu"
    assert timing.calls == []


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_an_explicit_device_times_nothing(device):
    timing = FakeTiming(cpu=85e-6, cuda=10e-6)
    assert pick_device(device, WITH_CUDA, timing) == device
    assert timing.calls == []


def test_auto_with_cuda_times_both_and_keeps_the_cpu_when_it_is_faster(caplog):
    timing = FakeTiming(cpu=85e-6, cuda=310e-6)
    with caplog.at_level(logging.INFO, logger="jam.model.runtime"):
        assert pick_device("auto", WITH_CUDA, timing) == "cpu"
    assert timing.calls == [["cpu", "cuda"]]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 1
    assert "cpu 85 us" in lines[0] and "cuda 310 us" in lines[0] and lines[0].endswith("using cpu")


def test_auto_with_cuda_takes_it_when_it_is_clearly_faster():
    assert pick_device("auto", WITH_CUDA, FakeTiming(cpu=300e-6, cuda=85e-6)) == "cuda"


def test_auto_falls_back_to_the_cpu_when_cuda_did_not_start():
    assert pick_device("auto", WITH_CUDA, FakeTiming(cpu=85e-6)) == "cpu"  # cuda left out


def test_cuda_without_support_warns_and_runs_on_the_cpu(caplog):
    with caplog.at_level(logging.WARNING, logger="jam.model.runtime"):
        assert pick_device("cuda", CPU_ONLY, FakeTiming()) == "cpu"
    assert "onnxruntime-gpu" in caplog.text


def test_unknown_device_is_a_one_line_error():
    with pytest.raises(JamError) as err:
        pick_device("tpu", CPU_ONLY, FakeTiming())
    assert "auto, cpu, cuda" in str(err.value) and "\n" not in str(err.value)


def test_load_model_auto_on_a_cpu_only_onnxruntime_measures_nothing(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(CPU_ONLY))

    def no_timing(*args, **kwargs):
        raise AssertionError("auto timed a device although only the CPU is available")

    monkeypatch.setattr(runtime, "measure_devices", no_timing)
    monkeypatch.setattr(runtime, "time_step", no_timing)
    model = load_model(default_model_path(), device="auto")
    assert model.device == "cpu"


def test_time_step_measures_a_real_step_and_leaves_the_state_at_zero():
    model = load_model(default_model_path(), device="cpu")
    fresh = model.step(0).copy()
    model.reset()
    seconds = runtime.time_step(model, steps=50, warmup=5)
    assert 0 < seconds < 0.05
    assert (model.step(0) == fresh).all()


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_load_model_auto_leaves_out_a_provider_that_falls_back_to_the_cpu(monkeypatch, caplog):
    """onnxruntime lists CUDA but runs the session on the CPU (no driver, no GPU build): the
    CUDA candidate is dropped instead of timed as if it were a GPU."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime really has CUDA")
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(WITH_CUDA))
    with caplog.at_level(logging.INFO, logger="jam.model.runtime"):
        model = load_model(default_model_path(), device="auto")
    assert model.device == "cpu"
    assert "device cuda left out" in caplog.text
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO
            and not r.getMessage().startswith("model: ")]  # the device line; then which model
    assert len(info) == 1 and "cpu" in info[0] and "cuda" not in info[0]
