"""Every default in one place, so the README table and the code cannot drift apart."""

AMQP_URL = "amqp://guest:guest@localhost:5672/%2F"
TOPIC = "vitrage_persistor"
PRIORITY_SUFFIX = ".info"  # oslo.messaging routes topic T at priority info to queue "T.info"
BATCH_SIZE = 1000
MAX_BATCHES = 1
MAX_SECONDS = 240.0  # stop starting batches well inside a 5-minute CronJob deadline
CONNECT_TIMEOUT = 5.0  # per attempt, broker and database
SOCKET_TIMEOUT = 30.0  # a single broker or database read/write
HEARTBEAT = 60  # AMQP heartbeat; BlockingConnection services it only inside pika calls
RETRY_SECONDS = 20.0  # total budget for retrying a connect or a batch transaction
LOCK_WAIT_TIMEOUT = 10  # seconds; MySQL session innodb_lock_wait_timeout and lock_wait_timeout
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # larger bodies go to the oversize queue, not to a row
MAX_BATCH_BYTES = 64 * 1024 * 1024  # a batch stops growing here: memory is bounded by bytes too
OVERSIZE_SUFFIX = ".oversize"
FETCH_SECONDS = 10.0  # a batch stops growing after this long: it is held unacked under the lease
LEASE_MARGIN = 10.0  # a lease renewal covers the retry budget + two socket timeouts + this
LOG_FORMAT = "json"
