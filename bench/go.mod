module github.com/ec0f1147/pipeline/bench

go 1.26.0

replace github.com/ec0f1147/pipeline => ../

require github.com/ec0f1147/pipeline v0.0.0-00010101000000-000000000000

require (
	github.com/alitto/pond/v2 v2.7.1 // indirect
	github.com/panjf2000/ants/v2 v2.12.1 // indirect
	github.com/sourcegraph/conc v0.3.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
)
