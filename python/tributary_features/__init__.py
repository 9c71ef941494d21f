"""Tributary declarative features in Python: the same definitions files the extraction stage
compiles (e.g. models/fraud/features/fraud_txn.yaml), evaluated column-wise with numpy, giving the
same vectors (semantics pinned in src/features/declarative/SEMANTICS.md).

    from tributary_features import load_feature_set
    fs = load_feature_set("models/fraud/features/fraud_txn.yaml", "examples/fraud/schemas/transaction.avsc")
    X = fs.compute(events)        # numpy float64 array, shape (len(events), len(fs.names))

Definitions calling plugin feature functions need their Python twins:
    load_feature_set(path, functions={"iot.heatIndexC": "examples/iot/plugins/heat_index.py:heat_index_c"})
"""
from .featureset import FeatureSet, load_feature_set, load_twin, DefinitionsError, tzdb_version

__all__ = ["FeatureSet", "load_feature_set", "load_twin", "DefinitionsError", "tzdb_version"]
