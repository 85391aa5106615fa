# The pyros relay in a container:
#   docker build -f deploy/relay.Dockerfile -t pyros-relay .
#   docker run -p 9090:9090 -v /etc/pyros:/etc/pyros:ro pyros-relay
FROM python:3.11-slim
COPY . /src
RUN pip install --no-cache-dir /src && useradd --system pyros
USER pyros
EXPOSE 9090
CMD ["pyros", "relay", "--host", "0.0.0.0", "--port", "9090", "--tokens", "/etc/pyros/tokens.json"]
