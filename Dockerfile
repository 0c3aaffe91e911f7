# CPU image: the playground with the embedded `classic` OCR engine, which needs no GPU and no
# download, installed as README's first command installs it (no torch). VLMs run on a vLLM/SGLang
# server (see compose.yaml); for local VLMs, add `pip install -r requirements-vlm.txt`.
# Build: docker build -t chatvlmllm .   Run: docker run -p 7860:7860 chatvlmllm
FROM python:3.11-slim

WORKDIR /app
# Debian packages the app uses (Tesseract for scripts beyond English and Chinese), as on a Space.
COPY packages.txt ./
RUN apt-get update && grep -v '^#' packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*
COPY requirements-cpu.txt requirements-nodeps.txt ./
RUN pip install --no-cache-dir -r requirements-cpu.txt \
 && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt
COPY . .

ENV GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 GRADIO_ANALYTICS_ENABLED=False
EXPOSE 7860
CMD ["python", "app.py"]
