package main

// Starters registered by optional files (cgo.go); main runs them first.
var extraStarters []func()
