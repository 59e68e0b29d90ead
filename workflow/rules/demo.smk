# The synthetic demo catalog (config/demo.yaml): generated locally, so the whole pipeline runs
# offline. Only defined when the config has a `demo:` section.


if SETTINGS.demo is not None:

    localrules:
        demo_catalog,

    rule demo_catalog:
        output:
            # On this disk even when the outputs go to a bucket: the items' hrefs name its COGs.
            user_file(directory(DEMO_DIR)),
        log:
            "results/logs/demo_catalog.log",
        conda:
            "../envs/ndvicube.yaml"
        params:
            seed=SETTINGS.demo.seed,
            start=str(SETTINGS.start),
            end=str(SETTINGS.end),
        script:
            "../../scripts/demo_catalog.py"
