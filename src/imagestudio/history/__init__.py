"""History: every job and image the studio made, in SQLite, fed by the job queues through a recorder.

Above the job queue in the import layers (it records the queue's jobs and speaks its types); the files
it lists are written by :mod:`imagestudio.storage`.
"""
