#!/bin/sh
# Fuzz the record path for MINUTES (default 30): repeated long hypothesis runs, each
# with fresh random seeds; stops at the first failure. Log: fuzz-long.log.
cd "$(dirname "$0")/.." || exit 2
end=$(( $(date +%s) + 60 * ${1:-30} ))
runs=0
while [ "$(date +%s)" -lt "$end" ]; do
    BURNWATCH_FUZZ=long nice -n 10 .venv/bin/python -m pytest -q -p no:cacheprovider \
        tests/fuzz >>fuzz-long.log 2>&1 || { echo "failed after $runs runs" >>fuzz-long.log; exit 1; }
    runs=$((runs + 1))
done
echo "passed: $runs runs of 5000 examples per test" >>fuzz-long.log
