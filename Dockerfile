# CPU image: the playground with the embedded `classic` OCR engine, which needs no GPU and no
# download. VLMs run on a vLLM/SGLang server (see compose.yaml) or, with a GPU build of torch,
# locally. Build: docker build -t chatvlmllm .   Run: docker run -p 7860:7860 chatvlmllm
FROM python:3.11-slim

WORKDIR /app
# Debian packages the app uses (Tesseract for scripts beyond English and Chinese), as on a Space.
COPY packages.txt ./
RUN apt-get update && grep -v '^#' packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt requirements-nodeps.txt ./
# The CPU build of torch first, so requirements.txt does not pull the multi-GB CUDA one.
RUN pip install --no-cache-dir torch torchvision --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -r requirements.txt \
 && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt
COPY . .

ENV GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 GRADIO_ANALYTICS_ENABLED=False
EXPOSE 7860
CMD ["python", "app.py"]
