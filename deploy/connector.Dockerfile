# The pyros cloud connector in a container (host networking to reach the robot's ROS graph):
#   docker build -f deploy/connector.Dockerfile -t pyros-connector .
#   docker run --network host -e PYROS_DEVICE_TOKEN=... pyros-connector
FROM python:3.11-slim
COPY . /src
RUN pip install --no-cache-dir '/src[ros1]' && useradd --system pyros
USER pyros
CMD ["pyros", "connector", "--relay", "wss://relay.example.com:9090", "--device", "robot1", "--backend", "mock", "--topics", "/turtle1/pose", "--commands", "/turtle1/cmd_vel", "--services", "/reset"]
