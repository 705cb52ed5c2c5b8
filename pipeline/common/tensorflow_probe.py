"""What TensorFlow sees on this machine, printed as one JSON line: `python -m pipeline.common.tensorflow_probe`.

`overnight doctor` runs it in a child process: importing TensorFlow takes seconds and writes
CUDA's start-up chatter to standard error, which the doctor keeps out of its own output.
"""

from __future__ import annotations

import json
import sys


def probe() -> dict:
    import keras
    import tensorflow as tf

    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        gpus.append(
            {
                "name": device.name,
                "device_name": details.get("device_name", ""),
                "capability": list(capability) if capability else None,
            }
        )
    return {
        "tensorflow": tf.__version__,
        "cuda_build": bool(tf.test.is_built_with_cuda()),
        "keras": keras.__version__,
        "gpus": gpus,
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(probe()) + "\n")  # the doctor's one line to read, not a log
