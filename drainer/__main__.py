from drainer.cli import console

console()
