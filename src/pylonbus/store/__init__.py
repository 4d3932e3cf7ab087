"""What must survive a restart: the spool's durable queues (one per shipping sink), its quarantine and the state
table (energy counters), in one SQLite file; and the memory queue a sink falls back on while the disk refuses."""
