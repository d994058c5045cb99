"""The distributed loop: Redis state and Celery tasks around the loop's plain functions.

- `app`: the Celery app, a composition root nothing imports (`celery -A worker.distributed.app`).
- `config`: every Celery and distributed-loop setting; `roles`: `bpfsleuth worker` and the threads
  a worker runs beside Celery (heartbeat, deadline scanner).
- `tasks`: the two Celery tasks, thin; `control`: start, advance, dispatch (control queue);
  `host`: run a step's plan on this host and audit it; `follow`: the CLI side.
- `runtime`: what one process needs (settings, store, registry, a Celery app to send with).
- `store`: investigation state, the step join, deadlines; `registry`: live hosts;
  `scanner`: the control workers' deadline and stall scanner.
"""
