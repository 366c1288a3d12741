//! dotenv files: compose-go syntax. (filled in by the dotenv work)
