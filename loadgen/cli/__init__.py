"""The ``loadgen`` commands. This process never imports gevent or Locust: Locust runs as a child process."""
