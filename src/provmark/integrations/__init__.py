"""Automatic capture where teams already work; each integration is an optional extra.

===============================  =====================================  ==========================
module                           what it does                           install
===============================  =====================================  ==========================
``integrations.openai``          ``instrument(client, pm)``: OpenAI-    ``provmark[openai]``
                                 compatible clients (sync, async,
                                 streaming, fallbacks)
``integrations.huggingface``     ``wrap_pipeline``, ``wrap_generate``,  ``provmark[huggingface]``
                                 ``model_identity`` of a model folder
``integrations.mlflow``          ``autolog(pm)`` in runs, records as    ``provmark[mlflow]``
                                 run artifacts, ``models:/`` identity
``integrations.dvc``             datasets of ``dvc.lock``/``.dvc``      ``provmark[dvc]``
                                 attached to a record's input
``integrations.wandb``           ``autolog(pm)``: records as a run      ``provmark[wandb]``
                                 table and artifact
``integrations.otel``            ``ProvmarkSpanProcessor`` (gen_ai.*    ``provmark[otel]``
                                 spans -> records), record ids on spans
``integrations.containers``      execution-context manifest, OCI        (no extra)
                                 image labels
===============================  =====================================  ==========================

Nothing here is imported by ``import provmark``; each module imports its library
when it is first used and raises :class:`~provmark.ConfigError` naming the extra
to install when the library is missing or of an unsupported version.
"""

from __future__ import annotations
