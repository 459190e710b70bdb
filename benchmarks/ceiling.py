"""The framework ceiling of `benchmarks/serving.py`: a FastAPI `POST /predict` that parses the same
JSON body into a dict and returns a constant, served with the same uvicorn flags as
`ml-assets serve` (no access log, uvloop + httptools when installed, N worker processes).

    .venv/bin/python benchmarks/ceiling.py PORT [WORKERS]
"""

import json
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
ANSWER = {"request_id": "-", "model_name": "ceiling", "model_version": "0", "score": 0.5, "label": 0}


@app.post("/predict")
async def predict(request: Request) -> JSONResponse:
    data = json.loads(await request.body())
    return JSONResponse(ANSWER if isinstance(data, dict) else {})


@app.get("/health")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


if __name__ == "__main__":
    uvicorn.run("ceiling:app", app_dir=str(Path(__file__).parent), host="127.0.0.1", port=int(sys.argv[1]),
                workers=int(sys.argv[2]) if len(sys.argv) > 2 else 1, log_level="warning", access_log=False)
