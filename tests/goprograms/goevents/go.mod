module goevents

go 1.19
