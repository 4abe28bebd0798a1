"""Drivers for a Model's files: where they come from, what they hold, whether they are safe.

One module per source (``huggingface``, ``url``, ``disk``), plus the parts every source
shares: ``hashing`` (sha256 listing with a persistent cache), ``scanners`` (picklescan per
file chosen by content, and our own format checks), ``safetensors_header`` and
``local_metadata`` (parameter count, dtype and config fields read without loading
weights), ``records`` (where add_model left a model's files for the later steps).
Errors come out as the types of ``errors``, never as a library's own.
"""
