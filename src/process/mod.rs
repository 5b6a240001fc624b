//! Starting the application. Knows nothing about AWS: it receives a finished
//! environment.

pub mod exec;
pub mod init;
pub mod memfile;
