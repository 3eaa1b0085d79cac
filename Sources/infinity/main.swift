import InfinityCLI

await InfinityCommand.runAsMain()
