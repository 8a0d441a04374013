# Builds the `tipline` binary (migrations are compiled into it) and ships it on a slim Debian.
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product tipline --static-swift-stdlib \
 && cp "$(swift build -c release --show-bin-path)/tipline" /usr/local/bin/tipline

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* && useradd --system tipline
COPY --from=build /usr/local/bin/tipline /usr/local/bin/tipline
USER tipline
ENTRYPOINT ["tipline"]
CMD ["--help"]
