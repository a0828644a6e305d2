"""A Celery application for the client tests: the broker is $WARREN_CELERY_BROKER (an amqp://
URL), the tasks' queue $WARREN_CELERY_QUEUE, results come back over rpc:// (reply queues on the
same broker), tasks are acked late and may carry a priority."""

import os

from celery import Celery

app = Celery("warren_it", broker=os.environ["WARREN_CELERY_BROKER"], backend="rpc://")
app.conf.update(
    task_default_queue=os.environ["WARREN_CELERY_QUEUE"],
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_queue_max_priority=10,
    task_default_priority=5,
    broker_connection_max_retries=3,
    result_persistent=False,
    worker_hijack_root_logger=False,
)


@app.task
def add(x, y):
    return x + y


@app.task(bind=True, max_retries=5)
def flaky(self, failures):
    """Fails `failures` times (each a retry through the broker), then answers how many."""
    if self.request.retries < failures:
        raise self.retry(countdown=0.1)
    return self.request.retries


@app.task
def echo(value):
    return value
