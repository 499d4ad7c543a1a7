"""What a model's records were made from, and the check that a rerun may reuse them.

A record is reused only when everything that determined it is the same:

* the model's identity: its kind's settings and the digests of its weights and config
  (ModelKind.identity), the protocol's families, the dataset's conventions (classes, ignore value,
  zero-label reduction, things, unseen classes), the condition, and RECORDS_VERSION, which a code
  change that changes recorded numbers increments. Together one digest, `identity`, per image row;
* the image's data: a digest of its label, instance and amodal files (`data_digest`);
* the model's own input for the image, where it has one: a prediction file, or the image a model
  with weights looked at (`input_digest`).

Paths are not part of it: a moved dataset or prediction folder resumes; a swapped one is refused
in one line naming what changed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

from harness.errors import UserError
from harness.evaluation.tables import RECORDS_VERSION
from harness.files import digest_files
from harness.run.records import RecordSet, image_rows


def model_identity(kind_identity: dict, protocol, dataset, condition, reads_images: bool = False) -> dict:
    """`condition`: a harness.conditions.spec.Condition. For a model that reads images, whose records
    depend on the condition's image, its whole identity (name, transform, level, seed and the version
    of the code that makes the images); for one that does not (prediction folders, made elsewhere;
    baselines) its name only: their records do not depend on how zeg-eval would make the image."""
    return {"model": kind_identity,
            "families": {name: dataclasses.asdict(cfg) for name, cfg in protocol.families.items()},
            "dataset": {"classes": list(dataset.classes), "ignore_index": dataset.ignore_index,
                        "reduce_zero_label": dataset.reduce_zero_label,
                        "things": None if dataset.things is None else list(dataset.things),
                        "unseen": list(dataset.unseen),
                        # which instance ids are objects; only when not the default, so that the
                        # records of runs made before these settings existed stay valid
                        **({"instance_ids": dataset.instance_ids} if dataset.instance_ids != "plain" else {}),
                        **({"crowd_id": dataset.crowd_id} if dataset.crowd_id is not None else {})},
            "condition": condition.identity() if reads_images else condition.name, "records_version": RECORDS_VERSION}


def digest(identity: dict) -> str:
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def data_digest(dataset, stem: str) -> str:
    """Digest of the files that give an image's ground truth."""
    instances = None if dataset.instances_dir is None else dataset.instances_dir / f"{stem}.png"
    amodal = None if dataset.amodal_dir is None else dataset.amodal_dir / f"{stem}.npz"
    return digest_files(dataset.label_path(stem), instances, amodal)


def input_digest(predictor, stem: str) -> str:
    path = predictor.input_path(stem)
    return "" if path is None else digest_files(path)


def _difference(old: dict | None, new: dict) -> str:
    if not old:
        return "its setup is not on record"

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict) and v and k != "cfg_options":
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(old), flat(new)
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ", ".join(f"{k}: {str(a.get(k))[:40]} -> {str(b.get(k))[:40]}" for k in keys[:3]) or "digest differs"


def verified_done(records: RecordSet, identity: dict, dataset, predictor, stems, recorded_identity: dict | None
                  ) -> set[str]:
    """The images of `stems` whose records may be reused; a UserError when a record was made from
    anything else than what this run would use."""
    rows = image_rows(records)
    if rows is None or not len(rows):
        return set()
    rows = rows[rows["image"].isin(set(stems))]
    where = f"model '{records.model}'" + ("" if records.condition == "clean" else f", condition '{records.condition}'")
    if "identity" not in rows.columns:
        raise UserError(f"{where}: its records in this folder were made by an older zeg-eval; use another --out",
                        records.run_dir)
    wanted = digest(identity)
    if len(rows) and (rows["identity"] != wanted).any():
        raise UserError(f"{where}: its records in this folder were made with another setup "
                        f"({_difference(recorded_identity, identity)}); use another --out or another model name",
                        records.run_dir)
    for stem, recorded_data, recorded_input in zip(rows["image"], rows["data_digest"], rows["input_digest"]):
        if data_digest(dataset, stem) != recorded_data:
            raise UserError(f"{where}, image '{stem}': its ground truth is not the one its records were made "
                            "from (another dataset?); use another --out", dataset.label_path(stem))
        if input_digest(predictor, stem) != recorded_input:
            raise UserError(f"{where}, image '{stem}': its input is not the one its records were made from "
                            "(another prediction folder or image?); use another --out",
                            predictor.input_path(stem))
    return set(rows["image"].tolist())
