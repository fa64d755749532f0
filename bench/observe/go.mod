module github.com/ec0f1147/pipeline/bench/observe

go 1.26.0

replace github.com/ec0f1147/pipeline => ../../

replace github.com/ec0f1147/pipeline/otel => ../../otel

replace github.com/ec0f1147/pipeline/prom => ../../prom
