module hoppers

go 1.19
