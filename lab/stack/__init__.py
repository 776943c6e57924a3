"""The containerized lab: ``lab up``, ``lab down``, ``lab status``, ``lab logs``.

    engine.py   the Docker engine (SDK) and Compose v2 (CLI): detection, one-sentence errors
    images.py   content-keyed image builds: offline base, Toxiproxy, the services image
    image_keys.py / wheelhouse.py / toxiproxy_build.py / apt_mirror.py / build_steps.py
                what the builds use: tags' content keys, the wheels an image installs,
                Toxiproxy built with Go, apt's Debian mirror, a logged host command
    health.py   polls with deadlines until every container is healthy and Toxiproxy is ready
    toxiapi.py  the Toxiproxy facts the stack needs (list, reset, version), via the adapter
    up.py / down.py / status.py / logs.py   the subcommands (``configure`` + ``run``)

Compose owns the topology (``compose.yaml``); this package only builds what Compose needs,
starts and stops it, and tells the user what is and is not healthy, naming the fix.
"""
