module ticks

go 1.19
