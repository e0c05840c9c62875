"""Executors: where a pipeline's steps run (worker processes, Ray tasks). Adapters behind
``shipyard.pipelines.executors.Executor``; a worker builds its step runner with the
factory the SDK hands in, so nothing here imports the SDK."""
