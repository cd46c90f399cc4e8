"""diffusers with a tiny DDPM pipeline built from configs here (random weights, 8x8
images, saved to and loaded from a local folder; no hub download)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from provmark import ConfigError

diffusers = pytest.importorskip("diffusers", reason="diffusers is not installable here")
torch = pytest.importorskip("torch", reason="torch is not installable here")
from provmark.integrations import diffusers as pm_diffusers  # noqa: E402

pytestmark = pytest.mark.slow  # builds and runs a (tiny) UNet: seconds


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=10)
    path = tmp_path_factory.mktemp("tiny-ddpm") / "tiny-ddpm"
    diffusers.DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(path)
    return path


def test_images_are_recorded_with_model_files_seed_and_scheduler(
    folder: Path, pm: Any, tmp_path: Path
) -> None:
    pipe = pm_diffusers.wrap_pipeline(
        diffusers.DDPMPipeline.from_pretrained(folder), pm, seed=42, save_to=tmp_path / "out"
    )
    result = pipe(batch_size=2, num_inference_steps=2)
    assert len(result.images) == 2 and len(pipe.last_paths) == 2
    first = pm.verify(pipe.last_paths[0]).record
    assert first.operation == "image_generation" and first.output.media_type == "image/png"
    assert first.input.seed == "42" and first.tags["diffusers.image_index"] == "0"
    assert first.params["num_inference_steps"] == 2 and first.params["batch_size"] == 2
    assert first.params["scheduler"] == "DDPMScheduler"
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert config["num_train_timesteps"] == 10
    files = {f.path for f in first.model.files}
    assert {"model_index.json", "scheduler/scheduler_config.json", "unet/config.json"} <= files
    weights = next(f for f in first.model.files if f.path.startswith("unet/diffusion_pytorch"))
    blob = (folder / weights.path).read_bytes()
    assert weights.sha256 == hashlib.sha256(blob).hexdigest()
    assert first.model.digest and first.model.provider == "diffusers"
    assert first.output.uri == pipe.last_paths[0].resolve().as_uri()

    again = pipe(batch_size=1, num_inference_steps=2, generator=torch.Generator().manual_seed(42))
    assert pm_diffusers.png_bytes(again.images[0]) == pipe.last_paths[0].read_bytes()
    assert pm.verify(pm_diffusers.png_bytes(again.images[0])).record.input.seed == "42"

    unsaved = pm_diffusers.wrap_pipeline(diffusers.DDPMPipeline.from_pretrained(folder), pm)
    image = unsaved(num_inference_steps=1).images[0]
    saved = tmp_path / "mine.png"
    image.save(saved)  # default options: the recorded PNG bytes
    r = pm.verify(saved).record
    assert r.record_id == unsaved.last_record_ids[0] and r.input.seed is not None


def test_c2pa_marking_and_setup_errors(folder: Path, pm: Any, tmp_path: Path) -> None:
    pytest.importorskip("c2pa", reason="c2pa-python is not installable here")
    from provmark.export import c2pa as c2pa_export
    from provmark.export.c2pa_certs import make_dev_cert

    cert = make_dev_cert()
    pipe = pm_diffusers.wrap_pipeline(
        diffusers.DDPMPipeline.from_pretrained(folder),
        pm,
        seed=7,
        version="0.1",
        save_to=tmp_path / "marked",
        c2pa=(cert.chain_pem, cert.key_pem),
    )
    pipe(num_inference_steps=1)
    (path,) = pipe.last_paths
    report = c2pa_export.read(path, trust_anchors=cert.ca_pem)
    assert report.state == "Trusted" and report.ok
    assert pipe.last_record_ids[0] in json.dumps(report.manifest, default=str)

    in_memory = diffusers.DDPMPipeline(
        unet=diffusers.UNet2DModel.from_pretrained(folder / "unet"),
        scheduler=diffusers.DDPMScheduler(num_train_timesteps=10),
    )
    with pytest.raises(ConfigError, match="save_pretrained"):
        pm_diffusers.wrap_pipeline(in_memory, pm)
    with pytest.raises(ConfigError, match="save_to"):
        pm_diffusers.wrap_pipeline(in_memory, pm, model=pm_diffusers.Model("x"), c2pa=(b"", b""))
    with pytest.raises(ConfigError, match="needs the model's version"):
        pm_diffusers.wrap_pipeline(
            diffusers.DDPMPipeline.from_pretrained(folder), pm, save_to=tmp_path, c2pa=(b"", b"")
        )
