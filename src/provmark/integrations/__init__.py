"""Automatic capture where teams already work; each integration is an optional extra.

===============================  =====================================  ==========================
module                           what it does                           install
===============================  =====================================  ==========================
``integrations.openai``          ``instrument(client, pm)``: OpenAI-    ``provmark[openai]``
                                 compatible clients (sync, async,
                                 streaming, raw views, Responses API,
                                 fallbacks)
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
``integrations.anthropic``       ``instrument(client, pm)``: Anthropic  ``provmark[anthropic]``
                                 messages (plain, streams, tool use)
``integrations.litellm``         ``ProvmarkCallback(pm)``: every call   ``provmark[litellm]``
                                 LiteLLM routes
``integrations.langchain``       ``ProvmarkCallbackHandler(pm)``: model ``provmark[langchain]``
                                 calls; agent runs as their parents
``integrations.llamaindex``      ``instrument(pm)``: LLM calls, queries ``provmark[llamaindex]``
                                 and agents from the dispatcher
``integrations.diffusers``       ``wrap_pipeline(pipe, pm)``: a record  ``provmark[diffusers]``
                                 per image, optional C2PA mark
``integrations.containers``      execution-context manifest, OCI        (no extra)
                                 image labels
===============================  =====================================  ==========================

Nothing here is imported by ``import provmark``; each module imports its library
when it is first used and raises :class:`~provmark.ConfigError` naming the extra
to install when the library is missing or of an unsupported version.
"""

from __future__ import annotations
