module waiters

go 1.19
