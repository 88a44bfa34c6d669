"""The breed names live in shared/breed_names.py, where web (corrections, GET /api/v1/breeds) may use
them too; ml's code and scripts that import them from here get the same objects."""
from shared.breed_names import (  # noqa: F401
    COMMON_NAMES,
    MAX_BREED_LENGTH,
    SUFFIXES,
    breed_key,
    canonical_breed,
    common_name,
    tidy_breed,
)
