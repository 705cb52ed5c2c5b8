"""The endpoint a user would write instead of `overnight serve`, for benchmarks/bench_serve.py:
Starlette on uvicorn, `model.predict` per request, the preprocessing copied, nothing logged.

python -m benchmarks.serve_baseline MODEL_FOLDER PORT
"""

from __future__ import annotations

import base64
import io
import sys

import numpy as np
import pandas as pd
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipeline.artifacts.model import ModelFolder
from pipeline.stages.features import input_name, transform


def create_app(folder: str) -> Starlette:
    model_folder = ModelFolder(folder)
    preprocessor = model_folder.preprocessor()
    model = model_folder.load_model()
    classes = np.asarray(preprocessor.classes)

    async def invocations(request: Request) -> JSONResponse:
        split = (await request.json())["dataframe_split"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        features = transform(frame, preprocessor)
        for column, shape in preprocessor.image.items():  # base64 PNG -> pixels, as training saw them
            features[input_name("image", column)] = np.stack([_pixels(value, shape) for value in frame[column]])
        outputs = model.predict(features, verbose=0)
        best = outputs.argmax(axis=1)
        return JSONResponse({"predictions": classes[best].tolist()})

    return Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])


def _pixels(text: str, shape) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB" if shape.channels == 3 else "L")
    array = np.asarray(image.resize((shape.width, shape.height)), dtype=np.float32) / 255.0
    return array.reshape(shape.height, shape.width, shape.channels)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
