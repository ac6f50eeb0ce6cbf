module floats

go 1.19
