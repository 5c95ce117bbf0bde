"""The sections of ``tools/bench.py`` (the one benchmark entry point): the machine
(:mod:`.machine`), the model (:mod:`.model`), the engine (:mod:`.engine`) and everything
that needs a JACK server (:mod:`.jack`). Each section is a function returning a dict;
``tools/bench.py`` runs them, prints one JSON object and writes one Markdown table."""
