# The synthetic demo catalog (config/demo.yaml): generated locally, so the whole pipeline runs
# offline. Only defined when the config has a `demo:` section.


if SETTINGS.demo is not None:

    localrules:
        demo_catalog,

    rule demo_catalog:
        output:
            directory(DEMO_DIR),
        log:
            "results/logs/demo_catalog.log",
        params:
            seed=SETTINGS.demo.seed,
            start=str(SETTINGS.start),
            end=str(SETTINGS.end),
        run:
            from ndvicube.demo import DemoCatalogSpec, generate_demo_catalog
            from ndvicube.logs import job_logging

            with job_logging(log[0], job=rule):
                spec = DemoCatalogSpec(
                    seed=params.seed, start=params.start, end=params.end
                )
                generate_demo_catalog(output[0], spec)
