module github.com/ec0f1147/pipeline

go 1.23.0

require (
	go.uber.org/goleak v1.3.0
	golang.org/x/time v0.11.0
)

require (
	github.com/stretchr/testify v1.12.1
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
